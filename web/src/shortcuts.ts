// ComfyUI's keyboard shortcuts. Ctrl+A/C/V and Delete are litegraph's own (the canvas keeps
// focus); the rest are here. Keys typed into a text field stay there, except Ctrl+Enter.
export interface ShortcutActions {
  queue(front: boolean): void;
  save(): void;
  open(): void;
  undo(): void;
  redo(): void;
  toggleMode(mode: number): void; // 4 bypass, 2 mute
  group(): void;
  refresh?(): void; // R: reload node definitions (model lists)
  forwardToCanvas(e: KeyboardEvent): void;
}

export function installShortcuts(actions: ShortcutActions) {
  window.addEventListener("keydown", (e) => {
    const target = e.target as HTMLElement;
    const inText = target.localName === "input" || target.localName === "textarea";
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    let handled = true;
    if (ctrl && key === "enter") actions.queue(e.shiftKey);
    else if (inText) handled = false;
    else if (ctrl && key === "s") actions.save();
    else if (ctrl && key === "o") actions.open();
    else if (ctrl && key === "z" && !e.shiftKey) actions.undo();
    else if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) actions.redo();
    else if (ctrl && key === "b") actions.toggleMode(4);
    else if (ctrl && key === "m") actions.toggleMode(2);
    else if (ctrl && key === "g") actions.group();
    else if (key === "r" && !ctrl && !e.altKey && !e.shiftKey && actions.refresh) actions.refresh();
    else {
      handled = false;
      if (target === document.body) actions.forwardToCanvas(e);
    }
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  });
}
