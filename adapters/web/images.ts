/**
 * The images the bot sent on the web, kept in memory to be served at `/api/images/<id>`: at most
 * `maxCount` of them and `maxBytes` in all, the oldest dropped first. Ids are random (122 bits),
 * so one visitor cannot guess the URL of another's picture.
 */
import { randomUUID } from 'node:crypto';
import { imageContentType } from './normalize.ts';

/** An image kept for serving. */
export interface KeptImage {
  readonly data: Uint8Array;
  readonly contentType: string;
}

/** Options of {@link ImageShelf}. */
export interface ImageShelfOptions {
  readonly maxBytes: number;
  readonly maxCount: number;
}

/** A bounded, oldest-out store of images by id. */
export class ImageShelf {
  readonly #images = new Map<string, KeptImage>();
  readonly #maxBytes: number;
  readonly #maxCount: number;
  #bytes = 0;

  constructor(options: ImageShelfOptions) {
    for (const [key, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${key} must be a positive integer`);
    }
    this.#maxBytes = options.maxBytes;
    this.#maxCount = options.maxCount;
  }

  /**
   * Keeps `data` and returns its id, or `undefined` when it alone is larger than `maxBytes`
   * (it is not kept; the others stay).
   */
  put(data: Uint8Array, mimeType?: string): string | undefined {
    if (data.byteLength > this.#maxBytes) return undefined;
    while (this.#images.size >= this.#maxCount || this.#bytes + data.byteLength > this.#maxBytes) {
      const [oldest, image] = this.#images.entries().next().value!;
      this.#images.delete(oldest);
      this.#bytes -= image.data.byteLength;
    }
    const id = randomUUID();
    this.#images.set(id, { data, contentType: imageContentType(data, mimeType) });
    this.#bytes += data.byteLength;
    return id;
  }

  /** The image kept under `id`, if it still is. */
  get(id: string): KeptImage | undefined {
    return this.#images.get(id);
  }

  /** How many images are kept, and their bytes. */
  get size(): { readonly count: number; readonly bytes: number } {
    return { count: this.#images.size, bytes: this.#bytes };
  }

  clear(): void {
    this.#images.clear();
    this.#bytes = 0;
  }
}
