import { useId, useState } from 'react';
import type { LinkStatus } from '../signaling/client';
import type { Mode } from '../signaling/protocol';
import { GuardSetting } from '../guard/GuardSetting';
import { InterestsInput } from './InterestsInput';
import { OnlineCount } from './OnlineCount';
import { ShieldIcon, TextIcon, VideoIcon } from './Icons';
import { Logo } from './Logo';

interface Props {
  online: number | null;
  link: LinkStatus;
  turnAvailable: boolean;
  privacy: boolean;
  notice: string | null;
  onPrivacy: (on: boolean) => void;
  onStart: (mode: Mode, interests: string[]) => void;
}

export function Landing({ online, link, turnAvailable, privacy, notice, onPrivacy, onStart }: Props) {
  const [interests, setInterests] = useState<string[]>([]);
  const [accepted, setAccepted] = useState(false);
  const termsId = useId();
  const privacyId = useId();
  const ready = link === 'open';
  const canStart = accepted && ready;
  const why = !ready ? 'Connecting to the server…' : !accepted ? 'Tick the box above to start.' : '';

  return (
    <main className="landing">
      <header className="landing-top">
        <Logo />
        <OnlineCount online={online} link={link} />
      </header>

      <section className="landing-card" aria-labelledby="headline">
        <h1 id="headline">
          Talk to <span className="accent">someone new.</span>
        </h1>
        <p className="lede">
          Random one-on-one video or text chat. No sign-up, no profile. Press Next any time to meet someone else.
        </p>

        <InterestsInput value={interests} onChange={setInterests} />

        <div className="option-row">
          <label htmlFor={privacyId} className="switch-label">
            <ShieldIcon />
            <span>
              <span className="option-title">Hide my IP</span>
              <span className="hint">
                {turnAvailable
                  ? 'Video goes through the server’s relay, so the stranger never sees your IP. A bit slower.'
                  : 'Not available: this server has no relay (TURN).'}
              </span>
            </span>
          </label>
          <input
            id={privacyId}
            type="checkbox"
            role="switch"
            className="switch"
            data-testid="privacy-toggle"
            checked={privacy && turnAvailable}
            disabled={!turnAvailable}
            aria-checked={privacy && turnAvailable}
            onChange={(e) => onPrivacy(e.target.checked)}
          />
        </div>

        <GuardSetting />

        <label htmlFor={termsId} className="terms">
          <input
            id={termsId}
            type="checkbox"
            data-testid="accept-terms"
            checked={accepted}
            onChange={(e) => setAccepted(e.target.checked)}
          />
          <span>
            I’m 18 or older and agree to the rules: no nudity, harassment, hate or spam. Strangers can record what
            you show them.
          </span>
        </label>

        <div className="start-row">
          <button
            type="button"
            className="btn btn-primary btn-big"
            data-testid="start-video"
            disabled={!canStart}
            onClick={() => onStart('video', interests)}
          >
            <VideoIcon /> Video
          </button>
          <span className="or" aria-hidden="true">
            or
          </span>
          <button
            type="button"
            className="btn btn-secondary btn-big"
            data-testid="start-text"
            disabled={!canStart}
            onClick={() => onStart('text', interests)}
          >
            <TextIcon /> Text
          </button>
        </div>
        <p className="hint start-hint" aria-live="polite">
          {notice ?? why}
        </p>
      </section>

      <footer className="landing-foot">
        <span>Open source and self-hostable.</span>
        <span>Esc twice skips to the next stranger.</span>
      </footer>
    </main>
  );
}
