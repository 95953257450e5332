import { useEffect, useRef } from 'react';

interface Props {
  stream: MediaStream | null;
  muted?: boolean;
  mirrored?: boolean;
  className?: string;
  label: string;
  testId: string;
}

/** A <video> bound to a MediaStream (srcObject can only be set from code). */
export function VideoView({ stream, muted, mirrored, className, label, testId }: Props) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (el.srcObject !== stream) el.srcObject = stream;
    if (stream) el.play?.()?.catch(() => {});
    return () => {
      if (el.srcObject === stream) el.srcObject = null;
    };
  }, [stream]);
  return (
    <video
      ref={ref}
      className={`${className ?? ''} ${mirrored ? 'mirrored' : ''}`}
      data-testid={testId}
      aria-label={label}
      autoPlay
      playsInline
      muted={muted}
    />
  );
}
