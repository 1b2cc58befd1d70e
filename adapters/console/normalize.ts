/** Pure helpers of the console adapter: the console chat and user, and how things print. */
import type { ChatAddress, UserRef } from '../../src/message.ts';

/** The one chat of a console adapter. */
export function consoleChat(adapter: string): ChatAddress {
  return { adapter, platform: 'console', id: 'console', kind: 'private', title: 'Console' };
}

/** The person at the terminal. */
export function consoleUser(name: string): UserRef {
  return { id: 'console-user', name, username: name };
}

/** A file extension for image bytes, from the MIME type or the bytes' signature. */
export function imageExtension(data: Uint8Array, mimeType?: string): string {
  const fromMime = mimeType?.match(/^image\/(png|jpeg|gif|webp)$/)?.[1];
  if (fromMime) return fromMime === 'jpeg' ? 'jpg' : fromMime;
  if (data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47) return 'png';
  if (data[0] === 0xff && data[1] === 0xd8) return 'jpg';
  if (data[0] === 0x47 && data[1] === 0x49 && data[2] === 0x46) return 'gif';
  if (data[8] === 0x57 && data[9] === 0x45 && data[10] === 0x42 && data[11] === 0x50) return 'webp';
  return 'bin';
}
