import { useId, useState } from 'react';
import { readBlurNudity, writeBlurNudity } from './setting';

/** The landing page's "Blur nudity" switch; the choice is remembered in this browser. */
export function GuardSetting() {
  const [on, setOn] = useState(readBlurNudity);
  const id = useId();
  return (
    <div className="option-row">
      <label htmlFor={id} className="switch-label">
        <svg width={20} height={20} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
          <path d="M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z" />
          <path d="M3 3l18 18" />
        </svg>
        <span>
          <span className="option-title">Blur nudity</span>
          <span className="hint">
            Your browser checks the stranger’s video and blurs nudity. Nothing leaves your device.
          </span>
        </span>
      </label>
      <input
        id={id}
        type="checkbox"
        role="switch"
        className="switch"
        data-testid="guard-toggle"
        checked={on}
        aria-checked={on}
        onChange={(e) => {
          setOn(e.target.checked);
          writeBlurNudity(e.target.checked);
        }}
      />
    </div>
  );
}
