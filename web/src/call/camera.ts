import { openUserMedia } from './media';

type GetUserMedia = (c: MediaStreamConstraints) => Promise<MediaStream>;

/**
 * The local camera and microphone: opened once and kept across chats (the
 * next stranger sees you at once), stopped when leaving the chat screen.
 */
export class Camera {
  private current: MediaStream | null = null;
  private opening: Promise<MediaStream | null> | null = null;
  /** Bumped by stop(), so a request that was still open when stopped is dropped. */
  private generation = 0;

  /** getUserMedia is absent in an insecure context (http other than localhost). */
  constructor(private readonly getUserMedia: GetUserMedia | undefined) {}

  get stream(): MediaStream | null {
    return this.current;
  }

  /**
   * The stream, asking for it if not open yet (a second call while asking
   * shares the request). Resolves null when stop() came first, having stopped
   * the late stream; rejects with the browser's error otherwise.
   */
  open(): Promise<MediaStream | null> {
    if (this.current) return Promise.resolve(this.current);
    if (this.opening) return this.opening;
    const generation = this.generation;
    const gum = this.getUserMedia;
    const asked = gum
      ? openUserMedia(gum)
      : Promise.reject(Object.assign(new Error('no mediaDevices'), { name: 'InsecureContext' }));
    const p = asked.then(
      (stream) => {
        if (this.opening === p) this.opening = null;
        if (generation !== this.generation) {
          stream.getTracks().forEach((t) => t.stop());
          return null;
        }
        this.current = stream;
        return stream;
      },
      (err: unknown) => {
        if (this.opening === p) this.opening = null;
        if (generation !== this.generation) return null;
        throw err;
      },
    );
    this.opening = p;
    return p;
  }

  /** Turns camera and microphone off; a request still open is dropped when it answers. */
  stop(): void {
    this.generation++;
    this.opening = null;
    this.current?.getTracks().forEach((t) => t.stop());
    this.current = null;
  }
}
