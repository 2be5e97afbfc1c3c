// Keyboard shortcuts, named once for the screen and its help line.

/** Cancels every open order of the signed-in account. */
export const CANCEL_ALL_SHORTCUT = "Alt+Shift+C";

export const isCancelAll = (e: KeyboardEvent): boolean => e.altKey && e.shiftKey && e.code === "KeyC";
