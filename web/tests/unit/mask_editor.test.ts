// The mask editor's widget-value parsing and the combo refresh after /object_info changes.
import { describe, expect, it } from "vitest";
import { imageRefOf } from "../../src/mask_editor";
import { refreshComboValues } from "../../src/widgets";

describe("imageRefOf", () => {
  it("reads plain names, subfolders and the [input]/[output]/[temp] annotation", () => {
    expect(imageRefOf("a.png")).toEqual({ filename: "a.png", subfolder: "", type: "input" });
    expect(imageRefOf("sub/dir/a b.png")).toEqual({ filename: "a b.png", subfolder: "sub/dir", type: "input" });
    expect(imageRefOf("clipspace/clipspace-mask-12.png [input]")).toEqual({ filename: "clipspace-mask-12.png", subfolder: "clipspace", type: "input" });
    expect(imageRefOf("ComfyUI_00001_.png [output]")).toEqual({ filename: "ComfyUI_00001_.png", subfolder: "", type: "output" });
    expect(imageRefOf("x.png [temp]")).toEqual({ filename: "x.png", subfolder: "", type: "temp" });
    expect(imageRefOf("x [other].png")).toEqual({ filename: "x [other].png", subfolder: "", type: "input" });
  });
});

describe("refreshComboValues", () => {
  const def = (values: string[]) => ({ name: "L", input: { required: { ckpt_name: [values], image: [["a.png"], { image_upload: true }] } }, output: [] });
  const fakeNode = (ckpt: string, image: string) => {
    const ckptW = { type: "combo", name: "ckpt_name", value: ckpt, options: { values: ["x", "y"] } };
    const imageW = { type: "combo", name: "image", value: image, options: { values: ["a.png", image] } };
    const control = { type: "combo", name: "control_after_generate", value: "fixed", options: { values: ["fixed"] } };
    return { comfyClass: "L", widgets: [ckptW, imageW, control], imageWidget: imageW, setDirtyCanvas() {} } as any;
  };
  it("takes the server's lists, keeps uploaded images, falls back to the first value", () => {
    const info: any = { L: def(["x", "y"]) };
    const kept = fakeNode("y", "clipspace/m.png [input]");
    const changed = refreshComboValues([kept], info, { L: def(["w", "x", "y"]) } as any);
    expect(changed).toBe(1);
    expect(kept.widgets[0].options.values).toEqual(["w", "x", "y"]);
    expect(kept.widgets[0].value).toBe("y");
    expect(kept.widgets[1].options.values).toEqual(["a.png", "clipspace/m.png [input]"]);
    expect(kept.widgets[1].value).toBe("clipspace/m.png [input]");
    expect(kept.widgets[2].options.values).toEqual(["fixed"]);
    expect(info.L.input.required.ckpt_name[0]).toEqual(["w", "x", "y"]); // new nodes get the new list
    const gone = fakeNode("y", "a.png");
    refreshComboValues([gone], info, { L: def(["x"]) } as any);
    expect(gone.widgets[0].value).toBe("x");
  });
});
