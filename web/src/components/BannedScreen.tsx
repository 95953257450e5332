import { useEffect, useRef } from 'react';
import { Logo } from './Logo';

/**
 * What a banned connection sees instead of the app: the server refused it
 * (error `banned` on join or next, or a ban pushed while connected). There is
 * deliberately no Start button: every start would be refused again. It names
 * no act, since the page does not know which report led to the ban.
 */
export function BannedScreen() {
  const headingRef = useRef<HTMLHeadingElement>(null);
  // The screen replaces whatever had the focus; move it here so screen
  // readers read the news rather than nothing.
  useEffect(() => headingRef.current?.focus(), []);
  return (
    <main className="landing banned" data-testid="banned">
      <header className="landing-top">
        <Logo />
      </header>
      <section className="landing-card" aria-labelledby="banned-title">
        <h1 id="banned-title" tabIndex={-1} ref={headingRef}>
          You can’t chat right now
        </h1>
        <p className="lede">
          Other people reported chats with this connection, so new chats can’t be started from it for a while.
        </p>
        <p className="hint">
          If you share this network (a school, an office, a café), someone else on it may have caused this. Try again
          later, or from another network.
        </p>
      </section>
    </main>
  );
}
