// ESLint for the web client: typescript-eslint with type information (the
// project's tsconfig is already built for tsc, so the rules that need types
// cost one program) and the React hooks rules, the compiler-based ones of
// recommended-latest included. `npm run lint` allows no warnings.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'public/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  reactHooks.configs.flat['recommended-latest'],
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // `for (const _ of s)` counts without using the value.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_' }],
    },
  },
  {
    // The fakes implement the browser's async APIs with `async` methods that
    // do not await: `async` is what turns a throw into a rejection, as in the
    // browser. Tests wrap steps in async act() for the same reason.
    files: ['src/test/**', 'src/**/*.test.{ts,tsx}'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['eslint.config.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
