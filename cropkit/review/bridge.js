// The reviewer's link to the page: while the pointer has been over the reviewer (until a click elsewhere), every
// key goes to it and none to JupyterLab (no cell is run, edited or deleted); the reviewer shows a frame then. It
// also reports the width the notebook gives the reviewer and the window's height, and shows the cursor Python asks.
const MODIFIERS = ["Shift", "Control", "Alt", "Meta", "CapsLock"];
const PASS = ["F5", "F11", "F12"];

function editable(t) {
  if (!t) return false;
  if (t.isContentEditable || t.tagName === "TEXTAREA") return true;
  return t.tagName === "INPUT" && !["button", "checkbox", "range", "radio"].includes(t.type);
}

// A press keeps the keys with the reviewer when it lands on the reviewer, in the margin of its own cell (not the
// cell's code) or on the notebook's background; a press in another cell, its own code or outside the notebook
// gives them back.
function keepsKeys(target, root, ownCell) {
  if (!target || !target.closest) return false;
  if (root.contains(target)) return true;
  const cell = target.closest(".jp-Cell");
  if (cell) return cell === ownCell && !target.closest(".jp-Cell-inputWrapper");
  return Boolean(target.closest(".jp-Notebook"));
}

function render({ model, el }) {
  let root = null;
  let held = false;
  let tries = 0;
  let sizeTimer = null;
  const cleanups = [];
  const listen = (target, type, fn, options) => {
    target.addEventListener(type, fn, options);
    cleanups.push(() => target.removeEventListener(type, fn, options));
  };
  const setHeld = (value) => {
    if (value === held) return;
    held = value;
    root.classList.toggle("cropkit-held", value);
    model.send({ kind: "held", value });
  };
  const onKey = (event) => {
    if (!held || MODIFIERS.includes(event.key) || PASS.includes(event.key)) return;
    if (editable(event.target) && root.contains(event.target)) return; // typing a number into the angle box
    event.preventDefault();
    event.stopPropagation();
    event.stopImmediatePropagation();
    model.send({
      kind: event.type, key: event.key, code: event.code, shift: event.shiftKey, ctrl: event.ctrlKey,
      alt: event.altKey, meta: event.metaKey, repeat: event.repeat,
    });
  };
  const sendSize = () => {
    clearTimeout(sizeTimer);
    sizeTimer = setTimeout(() => {
      const box = root.parentElement || root;
      model.send({ kind: "size", width: Math.floor(box.clientWidth), height: Math.floor(window.innerHeight) });
    }, 80);
  };
  const applyCursor = () => {
    const canvas = root.querySelector(".cropkit-canvas");
    if (canvas) canvas.style.cursor = model.get("cursor") || "default";
  };
  const attach = () => {
    root = el.closest(".cropkit-reviewer");
    if (!root) {
      if (tries++ < 200) requestAnimationFrame(attach);
      return;
    }
    listen(root, "pointerenter", () => setHeld(true));
    listen(root, "pointerdown", (e) => { // before the canvas reports the press: which modifiers it carries
      model.send({ kind: "pointer", alt: e.altKey, shift: e.shiftKey, ctrl: e.ctrlKey, meta: e.metaKey });
    }, true);
    const ownCell = root.closest(".jp-Cell");
    listen(document, "pointerdown", (e) => setHeld(keepsKeys(e.target, root, ownCell)), true);
    listen(root, "wheel", (e) => { // the wheel scrolls the notebook unless one zooms on purpose
      if (!e.target.closest || !e.target.closest(".cropkit-canvas")) return;
      if (e.ctrlKey || e.metaKey || model.get("wheel_zooms")) {
        e.preventDefault(); // the canvas zooms the picture, the browser does not zoom the page
        return;
      }
      e.stopImmediatePropagation(); // the canvas never hears it, and the page scrolls as usual
    }, { capture: true, passive: false });
    listen(document, "keydown", onKey, true);
    listen(document, "keyup", onKey, true);
    listen(root, "click", (e) => { // a button or the aspect control gives the keys back to the picture
      if (e.target.closest("button")) e.target.closest("button").blur();
    });
    listen(root, "change", (e) => { if (e.target.blur) e.target.blur(); });
    const observer = new ResizeObserver(sendSize);
    observer.observe(root.parentElement || root);
    cleanups.push(() => observer.disconnect());
    listen(window, "resize", sendSize);
    model.on("change:cursor", applyCursor);
    cleanups.push(() => model.off("change:cursor", applyCursor));
    sendSize();
  };
  attach();
  return () => cleanups.forEach((f) => f());
}

export default { render };
