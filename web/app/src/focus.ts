// Where focus goes when the screen changes under it: a click on a link, a
// form that navigates, signing in or out and restoring keys all replace the
// element that had the focus. The new screen's heading takes it, so that a
// keyboard or screen reader user starts at the top of what is now shown,
// not at the start of the page.

import { type RefObject, useEffect } from 'react';

function focusHeading(h: HTMLElement | null | undefined): void {
  if (!h) return;
  // Focusable by script only, not a tab stop.
  if (!h.hasAttribute('tabindex')) h.tabIndex = -1;
  h.focus({ preventScroll: true });
}

/**
 * Gives the focus to the open screen's heading: after a control that had it
 * went away (a warning accepted, an offer dismissed).
 */
export function focusMainHeading(): void {
  focusHeading(document.querySelector<HTMLElement>('main h2'));
}

/**
 * Focuses the first h2 (a screen's heading) in container whenever key changes (and when the
 * component mounts), unless a warning (role="alertdialog") holds the focus.
 */
export function useFocusHeading(container: RefObject<HTMLElement | null>, key: string): void {
  useEffect(() => {
    const active = document.activeElement;
    if (active?.closest('[role="alertdialog"]')) return;
    focusHeading(container.current?.querySelector<HTMLElement>('h2'));
  }, [container, key]);
}
