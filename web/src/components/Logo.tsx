export function Logo({ onClick }: { onClick?: () => void }) {
  const mark = (
    <>
      <svg width="28" height="28" viewBox="0 0 64 64" aria-hidden="true" focusable="false">
        <defs>
          <linearGradient id="logo-g" x1="0" y1="0" x2="1" y2="1">
            <stop offset="0" stopColor="#7c5cff" />
            <stop offset="1" stopColor="#22d3ee" />
          </linearGradient>
        </defs>
        <rect width="64" height="64" rx="16" fill="url(#logo-g)" />
        <path
          d="M18 22h28a4 4 0 0 1 4 4v14a4 4 0 0 1-4 4H30l-9 7v-7h-3a4 4 0 0 1-4-4V26a4 4 0 0 1 4-4z"
          fill="#0b0d12"
          opacity=".85"
        />
        <circle cx="26" cy="33" r="3" fill="#fff" />
        <circle cx="38" cy="33" r="3" fill="#fff" />
      </svg>
      <span className="logo-text">stranger</span>
    </>
  );
  return onClick ? (
    <button type="button" className="logo logo-button" onClick={onClick} aria-label="Stranger: back to the start page">
      {mark}
    </button>
  ) : (
    <span className="logo">{mark}</span>
  );
}
