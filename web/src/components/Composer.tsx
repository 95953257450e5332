import { useEffect, useRef, useState, type FormEvent } from 'react';
import { MAX_CHAT_CODE_POINTS } from '../signaling/protocol';
import { SendIcon } from './Icons';

interface Props {
  /** A chat is on: the input takes text. */
  enabled: boolean;
  /** The chat's room: a draft belongs to one chat. */
  room: string | null;
  placeholder: string;
  /** Returns true when the line went out (the draft is then cleared). */
  onSend: (text: string) => boolean;
  onInput: (text: string) => void;
}

/** The chat input and its Send button. */
export function Composer({ enabled, room, placeholder, onSend, onInput }: Props) {
  // The draft is kept with the chat it was typed in, so it is gone (without an
  // effect resetting it) once that chat ends.
  const [draft, setDraft] = useState<{ room: string | null; text: string }>({ room: null, text: '' });
  const text = enabled && draft.room === room ? draft.text : '';
  const inputRef = useRef<HTMLInputElement>(null);

  // Put the cursor in the chat box when a chat starts, so one can type at once;
  // not on touch screens, where the keyboard would cover the stranger's video.
  useEffect(() => {
    if (enabled && window.matchMedia?.('(pointer: fine)').matches) inputRef.current?.focus({ preventScroll: true });
  }, [enabled, room]);

  const send = (e: FormEvent) => {
    e.preventDefault();
    if (onSend(text)) setDraft({ room, text: '' });
  };

  return (
    <form className="composer" onSubmit={send}>
      <label htmlFor="chat-input" className="sr-only">
        Message
      </label>
      <input
        id="chat-input"
        ref={inputRef}
        data-testid="chat-input"
        type="text"
        autoComplete="off"
        enterKeyHint="send"
        // Counts UTF-16 units, the server code points: never more than the server takes.
        maxLength={MAX_CHAT_CODE_POINTS}
        placeholder={placeholder}
        disabled={!enabled}
        value={text}
        onChange={(e) => {
          setDraft({ room, text: e.target.value });
          onInput(e.target.value);
        }}
      />
      <button
        type="submit"
        className="btn btn-primary btn-send"
        data-testid="chat-send"
        disabled={!enabled || text.trim() === ''}
        aria-label="Send message"
      >
        <SendIcon />
        <span className="send-text">Send</span>
      </button>
    </form>
  );
}
