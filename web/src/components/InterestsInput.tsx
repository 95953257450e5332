import { useId, useState, type KeyboardEvent } from 'react';
import { codePoints, MAX_INTEREST_CODE_POINTS, MAX_INTERESTS, normalizeInterests } from '../signaling/protocol';

interface Props {
  value: string[];
  onChange: (next: string[]) => void;
}

/**
 * Tag input: type, then Enter or a comma adds the tag; click a tag (or
 * Backspace in an empty field) to remove it. Tags go through the protocol's
 * normalisation, so what is shown is what the server matches on.
 */
export function InterestsInput({ value, onChange }: Props) {
  const [draft, setDraft] = useState('');
  // Why the last addition kept less than was typed; the protocol drops such interests silently.
  const [dropped, setDropped] = useState<string | null>(null);
  const id = useId();
  const full = value.length >= MAX_INTERESTS;

  const add = (raw: string) => {
    const parts = raw.split(',');
    const tooLong = parts.filter((p) => codePoints(p.trim()) > MAX_INTEREST_CODE_POINTS).length;
    const next = normalizeInterests([...value, ...parts]);
    const candidates = parts.map((p) => p.trim().toLowerCase()).filter((p) => p !== '' && codePoints(p) <= MAX_INTEREST_CODE_POINTS);
    const overLimit = new Set([...value, ...candidates]).size > MAX_INTERESTS;
    setDropped(
      tooLong > 0
        ? `Interests can be at most ${MAX_INTEREST_CODE_POINTS} characters; ${tooLong === 1 ? 'one was' : `${tooLong} were`} left out.`
        : overLimit
          ? `Only the first ${MAX_INTERESTS} interests are kept.`
          : null,
    );
    onChange(next);
    setDraft('');
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter' || e.key === ',') {
      e.preventDefault();
      if (draft.trim() !== '') add(draft);
    } else if (e.key === 'Backspace' && draft === '' && value.length > 0) {
      onChange(value.slice(0, -1));
    }
  };

  return (
    <div className="interests">
      <label htmlFor={id} className="field-label">
        Interests <span className="muted">(optional, up to {MAX_INTERESTS})</span>
      </label>
      <div className="tag-box">
        {value.map((tag) => (
          <button
            key={tag}
            type="button"
            className="tag"
            onClick={() => onChange(value.filter((t) => t !== tag))}
            aria-label={`Remove interest ${tag}`}
            title="Remove"
          >
            {tag}
            <span aria-hidden="true" className="tag-x">
              ×
            </span>
          </button>
        ))}
        <input
          id={id}
          data-testid="interests-input"
          className="tag-input"
          type="text"
          value={draft}
          disabled={full}
          placeholder={full ? 'That’s plenty' : value.length ? 'Add another…' : 'music, films, football…'}
          onChange={(e) => {
            const v = e.target.value;
            // A pasted "a, b, c" becomes three tags; the text after the last comma stays.
            if (v.includes(',')) {
              const i = v.lastIndexOf(',');
              add(v.slice(0, i));
              setDraft(v.slice(i + 1));
            } else {
              setDraft(v);
            }
          }}
          onKeyDown={onKeyDown}
          onBlur={() => {
            if (draft.trim() !== '') add(draft);
          }}
          maxLength={64}
          autoComplete="off"
          enterKeyHint="enter"
          aria-describedby={`${id}-hint`}
        />
      </div>
      <p id={`${id}-hint`} className="hint" aria-live="polite">
        {dropped ?? 'Press Enter or type a comma to add. We’ll try to match you with someone who shares one.'}
      </p>
    </div>
  );
}
