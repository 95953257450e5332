import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { AdminApi, sessionTokenStore } from './api';
import { Console } from './Console';
import '../styles.css';
import './admin.css';

function sessionStore(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the token is kept for this page only
  }
}

const root = document.getElementById('root');
if (!root) throw new Error('no #root element');
const api = new AdminApi((input, init) => fetch(input, init), sessionTokenStore(sessionStore()));
createRoot(root).render(
  <StrictMode>
    <Console api={api} />
  </StrictMode>,
);
