import type { LinkStatus } from '../signaling/client';

const fmt = new Intl.NumberFormat();

export function OnlineCount({ online, link }: { online: number | null; link: LinkStatus }) {
  const live = link === 'open' && online !== null;
  return (
    <span className={`online ${live ? 'online-live' : ''}`} data-testid="online-count" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {live ? `${fmt.format(online)} online` : link === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
    </span>
  );
}
