/** Why the camera or microphone could not be used, in words a person can act on. */
export type MediaErrorKind = 'denied' | 'absent' | 'busy' | 'insecure' | 'other';

export function classifyMediaError(err: unknown): MediaErrorKind {
  const name = err instanceof Error || (typeof err === 'object' && err !== null && 'name' in err)
    ? String(err.name)
    : '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'absent';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'busy';
    case 'InsecureContext':
      return 'insecure';
    default:
      return 'other';
  }
}

export const mediaErrorText: Record<MediaErrorKind, string> = {
  denied: 'Camera and microphone access was blocked. Allow it in your browser’s site settings, or continue with text chat.',
  absent: 'No camera or microphone was found on this device. You can still chat by text.',
  busy: 'Your camera or microphone is in use by another app. Close it and try again, or continue with text chat.',
  insecure: 'Video chat needs a secure (https) connection to this site. You can still chat by text.',
  other: 'Your camera or microphone could not be started. Try again, or continue with text chat.',
};

// 640x480: a camera's default mode, cheap to encode on phones and small
// machines. Measured on a 2-core box, asking for 1280x720 made the first
// remote frame come several times later (the encoder starts at full size).
const videoConstraints: MediaTrackConstraints = {
  width: { ideal: 640 },
  height: { ideal: 480 },
  frameRate: { ideal: 30 },
  facingMode: 'user',
};

/**
 * Asks for camera and microphone; if one of the two does not exist, settles
 * for the other, so a laptop without a mic (or a desktop without a camera)
 * can still video chat one way.
 */
export async function openUserMedia(
  getUserMedia: (c: MediaStreamConstraints) => Promise<MediaStream>,
): Promise<MediaStream> {
  try {
    return await getUserMedia({ audio: true, video: videoConstraints });
  } catch (err) {
    if (classifyMediaError(err) !== 'absent') throw err;
    try {
      return await getUserMedia({ video: videoConstraints });
    } catch {
      try {
        return await getUserMedia({ audio: true });
      } catch {
        throw err;
      }
    }
  }
}
