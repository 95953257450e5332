// The viewer's "Blur nudity" choice, remembered in this browser only.

const key = 'stranger.blurNudity';

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage blocked (privacy settings): the default applies
  }
}

/** On unless the viewer turned it off. */
export function readBlurNudity(): boolean {
  try {
    return storage()?.getItem(key) !== 'off';
  } catch {
    return true;
  }
}

export function writeBlurNudity(on: boolean): void {
  try {
    storage()?.setItem(key, on ? 'on' : 'off');
  } catch {
    /* not remembered; this page still uses the choice */
  }
}
