const TYPING_IDLE_MS = 3000;
const TYPING_SAFETY_MS = 15_000;

/**
 * "Is typing" for one chat, both ways. Ours: true once when typing starts,
 * false after a pause or when the input is emptied, nothing after a sent
 * line (the partner clears it on the line itself). Theirs: shown until their
 * false or their line, or for 15 s at most, so a lost false cannot leave it on.
 */
export class Typing {
  private sent = false;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private safetyTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (typing: boolean) => void,
    private readonly showStranger: (typing: boolean) => void,
  ) {}

  /** Every edit of the chat input. */
  input(text: string): void {
    if (text.trim() === '') {
      this.stop();
      return;
    }
    if (!this.sent) {
      this.sent = true;
      this.send(true);
    }
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.stop();
    }, TYPING_IDLE_MS);
  }

  /** A line went out: the partner stops showing "typing" on it, so no false follows. */
  lineSent(): void {
    this.clearIdle();
    this.sent = false;
  }

  /** We stopped typing (or leave the chat): false, if true was sent. */
  stop(): void {
    this.clearIdle();
    if (this.sent) {
      this.sent = false;
      this.send(false);
    }
  }

  /** The stranger's typing frame. */
  stranger(typing: boolean): void {
    this.clearSafety();
    if (typing) this.safetyTimer = setTimeout(() => this.showStranger(false), TYPING_SAFETY_MS);
    this.showStranger(typing);
  }

  /** The stranger's line: their typing ends with it. */
  strangerLine(): void {
    this.clearSafety();
    this.showStranger(false);
  }

  /** The chat ended: both ways stop, ours with a false if one is due. */
  end(): void {
    this.stop();
    this.clearSafety();
  }

  private clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private clearSafety(): void {
    if (this.safetyTimer !== null) clearTimeout(this.safetyTimer);
    this.safetyTimer = null;
  }
}
