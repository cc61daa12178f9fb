// Test process setup: the in-process SQS emulator accepts any credentials, so give the AWS
// SDK's default chain static ones instead of letting it probe the host. Against a real
// endpoint (SQS_ENDPOINT set, `npm run test:remote`) the caller's credentials are used.
import { installInlineSubtle } from '../services/core/envelope/inlineSubtle.ts';

if (!process.env.SQS_ENDPOINT) {
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
}

// Seal and open as the services do by default (CRYPTO_INLINE): every envelope test, GnuPG's included,
// runs through envelope/inlineSubtle.ts. test/core/envelope/inlineSubtle.test.ts compares it with Node's
// own WebCrypto.
installInlineSubtle();
