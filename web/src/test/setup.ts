import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';
import { endSession } from '../auth/session';

afterEach(() => {
  cleanup();
  endSession('signed_out');
  vi.unstubAllGlobals();
});
