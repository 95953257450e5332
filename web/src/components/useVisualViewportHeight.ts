import { useEffect } from 'react';

/**
 * Keeps --app-height at the visual viewport's height: on phones an open
 * keyboard shrinks the visual viewport but not the layout one, and the chat
 * must fit above the keyboard.
 */
export function useVisualViewportHeight(): void {
  useEffect(() => {
    const vv = window.visualViewport;
    if (!vv) return;
    const root = document.documentElement;
    const apply = () => root.style.setProperty('--app-height', `${Math.round(vv.height)}px`);
    apply();
    vv.addEventListener('resize', apply);
    return () => {
      vv.removeEventListener('resize', apply);
      root.style.removeProperty('--app-height');
    };
  }, []);
}
