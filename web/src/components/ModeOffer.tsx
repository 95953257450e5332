import { useEffect, useState } from 'react';
import type { Mode } from '../signaling/protocol';

/** How long a search goes on before the other mode is offered. */
export const MODE_OFFER_AFTER_MS = 10_000;

/** After MODE_OFFER_AFTER_MS of searching, the other mode, where someone may be waiting. */
export function ModeOffer({ mode, onSwitch }: { mode: Mode; onSwitch: () => void }) {
  const [shown, setShown] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => setShown(true), MODE_OFFER_AFTER_MS);
    return () => clearTimeout(t);
  }, []);
  if (!shown) return null;
  const other = mode === 'video' ? 'text' : 'video';
  return (
    <div className="mode-offer" data-testid="mode-offer">
      <span>Still looking. Try {other} chat instead?</span>
      <button type="button" className="btn btn-secondary" data-testid="switch-mode" onClick={onSwitch}>
        Switch to {other}
      </button>
    </div>
  );
}
