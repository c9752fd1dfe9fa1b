// POST /upload/image, /upload/mask and GET /view: ComfyUI's naming on clashes, duplicates,
// channels, previews, and every path-escape variant refused.
#include <gtest/gtest.h>

#include <png.h>

#include <cstring>
#include <fstream>

#include "io/jpeg.h"
#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

// A w x h RGBA PNG filled with one colour.
std::string png(uint32_t w, uint32_t h, uint8_t r, uint8_t g, uint8_t b, uint8_t a) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 4);
  for (size_t i = 0; i < px.size(); i += 4) px[i] = r, px[i + 1] = g, px[i + 2] = b, px[i + 3] = a;
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = w;
  image.height = h;
  image.format = PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  png_image_write_to_memory(&image, nullptr, &size, 0, px.data(), 0, nullptr);
  std::string out(size, '\0');
  png_image_write_to_memory(&image, out.data(), &size, 0, px.data(), 0, nullptr);
  out.resize(size);
  return out;
}

std::vector<uint8_t> decode(const std::string& data, bool& ok) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  ok = png_image_begin_read_from_memory(&image, data.data(), data.size());
  if (!ok) return {};
  image.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> px(PNG_IMAGE_SIZE(image));
  ok = png_image_finish_read(&image, nullptr, px.data(), 0, nullptr);
  return px;
}

HttpResult upload(const TestServer& s, const std::string& route, const std::vector<FormField>& fields) {
  auto [type, body] = multipart_body(fields);
  return s.request("POST", route, body, {{"Content-Type", type}});
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RouteUpload, NamingDuplicatesAndOverwrite) {
  TestServer s;
  std::string a = png(2, 2, 255, 0, 0, 255), b = png(2, 2, 0, 255, 0, 255);
  for (auto& route : both("/upload/image")) {
    SCOPED_TRACE(route);
    fs::remove_all(s.env.folders->input_directory());
    fs::create_directories(s.env.folders->input_directory());
    json r = upload(s, route, {{"image", "pic.png", a}}).json_body();
    EXPECT_EQ(r, (json{{"name", "pic.png"}, {"subfolder", ""}, {"type", "input"}}));
    // Same bytes: the existing file is the upload.
    EXPECT_EQ(upload(s, route, {{"image", "pic.png", a}}).json_body()["name"], "pic.png");
    // Other bytes: "pic (1).png", then "pic (2).png".
    EXPECT_EQ(upload(s, route, {{"image", "pic.png", b}}).json_body()["name"], "pic (1).png");
    EXPECT_EQ(upload(s, route, {{"image", "pic.png", png(1, 1, 1, 1, 1, 1)}}).json_body()["name"], "pic (2).png");
    EXPECT_EQ(read(s.env.folders->input_directory() / "pic (1).png"), b);
    // overwrite=true replaces.
    EXPECT_EQ(upload(s, route, {{"image", "pic.png", b}, {"overwrite", "", "true"}}).json_body()["name"], "pic.png");
    EXPECT_EQ(read(s.env.folders->input_directory() / "pic.png"), b);
    // subfolder and type.
    json t = upload(s, route, {{"image", "x.png", a}, {"subfolder", "", "sub/dir"}, {"type", "", "temp"}}).json_body();
    EXPECT_EQ(t, (json{{"name", "x.png"}, {"subfolder", "sub/dir"}, {"type", "temp"}}));
    EXPECT_TRUE(fs::exists(s.env.folders->temp_directory() / "sub" / "dir" / "x.png"));
  }
}

TEST(RouteUpload, BadRequests) {
  TestServer s;
  std::string a = png(1, 1, 0, 0, 0, 255);
  EXPECT_EQ(upload(s, "/upload/image", {{"other", "a.png", a}}).status, 400);
  EXPECT_EQ(upload(s, "/upload/image", {{"image", "", a}}).status, 500);  // a plain field, not a file
  EXPECT_EQ(upload(s, "/upload/image", {{"image", "a.png", a}, {"type", "", "models"}}).status, 500);
  for (std::string sub : {"..", "../x", "/etc", "a/../../x"}) {
    HttpResult r = upload(s, "/upload/image", {{"image", "a.png", a}, {"subfolder", "", sub}});
    EXPECT_EQ(r.status, 400) << sub;
  }
  EXPECT_EQ(upload(s, "/upload/image", {{"image", "../a.png", a}}).status, 400);
  EXPECT_EQ(upload(s, "/upload/image", {{"image", "/tmp/a.png", a}}).status, 400);
  EXPECT_FALSE(fs::exists(s.env.dir / "a.png"));
  EXPECT_EQ(s.request("POST", "/upload/image", "not multipart").status, 400);
}

TEST(RouteUpload, PathEscapeVariantsAreRefused) {
  TestServer s;
  std::string a = png(1, 1, 0, 0, 0, 255);
  fs::path input = s.env.folders->input_directory();
  fs::create_symlink(s.env.dir, input / "link");  // a folder inside that leads out
  // (In the filename list, "\\\\" is a quoted-string escape: the name the server reads has one backslash.)
  for (const std::string& sub : std::vector<std::string>{"link", "link/deeper", "..\\x", "a\\..\\..", std::string("a\0b", 3), "/", "./../x", "sub/../../x"}) {
    EXPECT_EQ(upload(s, "/upload/image", {{"image", "esc.png", a}, {"subfolder", "", sub}}).status, 400) << sub;
  }
  for (const std::string& name : std::vector<std::string>{"..\\\\a.png", std::string("a\0.png", 6), "./../a.png", "sub/../../a.png", "/a.png"}) {
    EXPECT_EQ(upload(s, "/upload/image", {{"image", name, a}}).status, 400) << name;
  }
  EXPECT_EQ(upload(s, "/upload/image", {{"image", "esc.png", a}, {"type", "", "../input"}}).status, 500);  // unknown type
  for (auto& p : fs::recursive_directory_iterator(s.env.dir))
    EXPECT_FALSE(p.path().filename() == "esc.png" || p.path().filename() == "a.png") << p.path();
  // Percent escapes are not decoded in form fields: "%2E%2E" is a folder name like any other.
  HttpResult r = upload(s, "/upload/image", {{"image", "in.png", a}, {"subfolder", "", "%2E%2E"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(fs::exists(input / "%2E%2E" / "in.png"));
}

TEST(RouteUpload, OnlyPicturesAndMediaAreStored) {
  TestServer s;
  fs::path input = s.env.folders->input_directory();
  struct Case {
    std::string name, data;
    int status;
  };
  std::string good = png(4, 3, 1, 2, 3, 255);
  std::string truncated = good.substr(0, good.size() - 20);
  std::string bogus_jpeg = std::string("\xff\xd8\xff\xe0", 4) + std::string(64, '\0');
  for (auto& c : std::vector<Case>{{"ok.png", good, 200},
                                   {"page.html", "<html><script>alert(1)</script></html>", 400},
                                   {"pic.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>", 400},
                                   {"fake.png", "not a picture at all", 400},
                                   {"trunc.png", truncated, 400},
                                   {"bad.jpg", bogus_jpeg, 400},
                                   {"empty.png", "", 400},
                                   {"clip.wav", std::string("RIFF\x24\0\0\0WAVEfmt ", 16), 200},
                                   {"clip.mp4", std::string("\0\0\0\x18" "ftypmp42", 12), 200},
                                   {"anim.gif", "GIF89a\x01\0\x01\0", 200}}) {
    HttpResult r = upload(s, "/upload/image", {{"image", c.name, c.data}});
    EXPECT_EQ(r.status, c.status) << c.name;
    EXPECT_EQ(fs::exists(input / c.name), c.status == 200) << c.name;
    if (c.status == 400) {
      EXPECT_TRUE(r.json_body()["error"].is_string()) << c.name;
    }
  }
  // The mask route checks the same way.
  json ref{{"filename", "ok.png"}, {"type", "input"}};
  EXPECT_EQ(upload(s, "/upload/mask", {{"image", "m.png", "<b>x</b>"}, {"original_ref", "", ref.dump()}}).status, 400);
}

TEST(RouteUpload, MaskMergesAlphaIntoTheOriginal) {
  TestServer s;
  std::ofstream(s.env.folders->output_directory() / "orig.png", std::ios::binary) << png(2, 2, 10, 20, 30, 255);
  json ref{{"filename", "orig.png"}, {"subfolder", ""}, {"type", "output"}};
  HttpResult r = upload(s, "/api/upload/mask",
                        {{"image", "mask.png", png(2, 2, 0, 0, 0, 77)}, {"original_ref", "", ref.dump()}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json_body(), (json{{"name", "mask.png"}, {"subfolder", ""}, {"type", "input"}}));
  bool ok = false;
  auto px = decode(read(s.env.folders->input_directory() / "mask.png"), ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(px[0], 10);
  EXPECT_EQ(px[1], 20);
  EXPECT_EQ(px[3], 77);
  // An original that does not exist: nothing written, still 200.
  json missing{{"filename", "nope.png"}, {"type", "output"}};
  EXPECT_EQ(upload(s, "/upload/mask", {{"image", "m2.png", png(1, 1, 0, 0, 0, 0)}, {"original_ref", "", missing.dump()}}).status,
            200);
  EXPECT_FALSE(fs::exists(s.env.folders->input_directory() / "m2.png"));
  // An escaping original is refused without reading it.
  json escape{{"filename", "../secret.png"}, {"type", "output"}};
  EXPECT_EQ(upload(s, "/upload/mask", {{"image", "m3.png", png(1, 1, 0, 0, 0, 0)}, {"original_ref", "", escape.dump()}}).status,
            200);
  EXPECT_FALSE(fs::exists(s.env.folders->input_directory() / "m3.png"));
}

// ComfyUI opens the original with PIL, so a JPEG (or WebP) original takes a mask too.
TEST(RouteUpload, MaskMergesAlphaIntoAJpegOriginal) {
  TestServer s;
  std::vector<uint8_t> rgb(8 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = 200, rgb[i + 1] = 100, rgb[i + 2] = 50;
  std::ofstream(s.env.folders->input_directory() / "orig.jpg", std::ios::binary) << io::encode_jpeg(rgb.data(), 8, 8, 95);
  json ref{{"filename", "orig.jpg"}, {"subfolder", ""}, {"type", "input"}};
  HttpResult r = upload(s, "/upload/mask", {{"image", "mask.png", png(8, 8, 0, 0, 0, 40)}, {"original_ref", "", ref.dump()}});
  ASSERT_EQ(r.status, 200) << r.body;
  bool ok = false;
  auto px = decode(read(s.env.folders->input_directory() / "mask.png"), ok);
  ASSERT_TRUE(ok);
  EXPECT_NEAR(px[0], 200, 3);
  EXPECT_NEAR(px[1], 100, 3);
  EXPECT_NEAR(px[2], 50, 3);
  EXPECT_EQ(px[3], 40);
  // A mask whose size differs from the original's is refused (PIL's putalpha raises): nothing written.
  r = upload(s, "/upload/mask", {{"image", "mask2.png", png(4, 4, 0, 0, 0, 40)}, {"original_ref", "", ref.dump()}});
  EXPECT_FALSE(fs::exists(s.env.folders->input_directory() / "mask2.png"));
}

TEST(RouteView, ServesFilesChannelsAndPreviews) {
  TestServer s;
  fs::path out = s.env.folders->output_directory();
  std::string pic = png(3, 2, 200, 100, 50, 128);
  std::ofstream(out / "a.png", std::ios::binary) << pic;
  fs::create_directories(out / "sub");
  std::ofstream(out / "sub" / "b.png", std::ios::binary) << pic;
  std::ofstream(s.env.folders->input_directory() / "in.png", std::ios::binary) << pic;
  std::ofstream(out / "page.html") << "<script>alert(1)</script>";
  for (auto& path : both("/view")) {
    HttpResult r = s.get(path + "?filename=a.png");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, pic);
    EXPECT_EQ(r.header("content-type"), "image/png");
    EXPECT_EQ(r.header("content-disposition"), "filename=\"a.png\"");
  }
  EXPECT_EQ(s.get("/view?filename=b.png&subfolder=sub&type=output").body, pic);
  EXPECT_EQ(s.get("/view?filename=in.png&type=input").body, pic);
  EXPECT_EQ(s.get("/view?filename=in.png%20%5Binput%5D").body, pic);  // annotation overrides type
  EXPECT_EQ(s.get("/view?filename=sub/b.png").status, 404);           // only the basename is used
  EXPECT_EQ(s.get("/view?filename=page.html").header("content-type"), "application/octet-stream");
  EXPECT_EQ(s.get("/view?filename=missing.png").status, 404);
  EXPECT_EQ(s.get("/view").status, 404);
  EXPECT_EQ(s.get("/view?filename=a.png&type=models").status, 400);

  bool ok = false;
  auto rgb = decode(s.get("/view?filename=a.png&channel=rgb").body, ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(rgb[3], 255);
  auto alpha = decode(s.get("/view?filename=a.png&channel=a").body, ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(alpha[0], 0);
  EXPECT_EQ(alpha[3], 128);
  HttpResult webp = s.get("/view?filename=a.png&preview=webp;50");
  EXPECT_EQ(webp.header("content-type"), "image/webp");
  EXPECT_EQ(webp.body.substr(0, 4), "RIFF");
  HttpResult jpeg = s.get("/view?filename=a.png&preview=jpeg;80");
  EXPECT_EQ(jpeg.header("content-type"), "image/jpeg");
  EXPECT_EQ(static_cast<uint8_t>(jpeg.body[0]), 0xff);
}

TEST(RouteView, PathEscapesAreRefused) {
  TestServer s;
  std::ofstream(s.env.dir / "secret.png") << "secret";
  fs::create_directories(s.env.folders->output_directory());
  fs::create_symlink(s.env.dir, s.env.folders->output_directory() / "link");
  fs::create_symlink(s.env.dir / "secret.png", s.env.folders->output_directory() / "s.png");
  struct Case {
    std::string query;
    int status;
  };
  for (auto& c : std::vector<Case>{{"filename=../secret.png", 400},
                                   {"filename=..%2Fsecret.png", 400},
                                   {"filename=%2Fetc%2Fpasswd", 400},
                                   {"filename=..%5Csecret.png", 400},
                                   {"filename=a%00.png", 400},
                                   {"filename=secret.png&subfolder=..", 403},
                                   {"filename=secret.png&subfolder=%2E%2E", 403},
                                   {"filename=passwd&subfolder=/etc", 403},
                                   {"filename=secret.png&subfolder=link", 403},
                                   {"filename=s.png", 404},
                                   // more spellings of the same escapes
                                   {"filename=%252E%252E%252Fsecret.png", 404},  // decoded once: a plain name
                                   {"filename=..%2Fsecret.png%20%5Boutput%5D", 400},
                                   {"filename=secret.png&type=..%2F", 400},
                                   {"filename=secret.png&subfolder=..%5C..", 403},
                                   {"filename=secret.png&subfolder=a%00b", 403},
                                   {"filename=secret.png&subfolder=.%2F..", 403},
                                   {"filename=secret.png&subfolder=link%2F.", 403},
                                   {"filename=secret.png&subfolder=%2F", 403},
                                   {"filename=%2E%2E%2Fsecret.png", 400},
                                   {"filename=....%2F%2Fsecret.png", 400},
                                   {"filename=s.png&subfolder=.", 404}}) {
    HttpResult r = s.get("/view?" + c.query);
    EXPECT_EQ(r.status, c.status) << c.query;
    EXPECT_NE(r.body, "secret") << c.query;
  }
}

}  // namespace
}  // namespace comfy::testing
