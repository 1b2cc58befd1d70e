/**
 * Translated strings. Chorus ships English and Simplified Chinese; plugins add their own tables.
 * A missing key falls back to English, then to the key itself, so a gap shows instead of crashing.
 */

/** Locales with built-in strings. Others may be added by plugins. */
export type Locale = 'en' | 'zh-CN' | (string & {});

/** A table of strings, `{name}` marks a parameter. */
export type Strings = Readonly<Record<string, string>>;

const coreStrings: Record<string, Strings> = {
  en: {
    'job.cancelled': 'Cancelled.',
    'job.failed': 'Something went wrong: {reason}',
    'job.shutdown': 'Stopped: the bot is shutting down.',
    'job.reloaded': 'Stopped: the plugin was reloaded.',
    'stream.cancelled': '(cancelled)',
    'stream.reloaded': '(stopped: the plugin was reloaded)',
    'stream.empty': '(empty answer)',
    'stream.failed': '(answer cut short: {reason})',
    'cancel.description': 'Cancel your running jobs in this chat',
    'cancel.done': 'Cancelled {count} job(s).',
    'cancel.none': 'You have nothing running here.',
    'command.unknown': 'Unknown command /{name}. Try /help.',
    'button.cancel': 'Cancel',
    'failure.timeout': 'timed out',
    'failure.refused': 'refused',
    'failure.refusedStatus': 'refused (HTTP {status})',
    'failure.invalid': 'unusable answer',
    'failure.blocked': 'refused to follow a link to a private address',
    'failure.network': 'network error',
    'failure.internal': 'internal error',
  },
  'zh-CN': {
    'job.cancelled': '已取消。',
    'job.failed': '出错了：{reason}',
    'job.shutdown': '已停止：机器人正在关闭。',
    'job.reloaded': '已停止：插件已重新加载。',
    'stream.cancelled': '（已取消）',
    'stream.reloaded': '（已停止：插件已重新加载）',
    'stream.empty': '（空回答）',
    'stream.failed': '（回答中断：{reason}）',
    'cancel.description': '取消你在此会话中正在运行的任务',
    'cancel.done': '已取消 {count} 个任务。',
    'cancel.none': '你在这里没有正在运行的任务。',
    'command.unknown': '未知命令 /{name}。试试 /help。',
    'button.cancel': '取消',
    'failure.timeout': '超时',
    'failure.refused': '被拒绝',
    'failure.refusedStatus': '被拒绝（HTTP {status}）',
    'failure.invalid': '回答无法使用',
    'failure.blocked': '拒绝访问指向内网地址的链接',
    'failure.network': '网络错误',
    'failure.internal': '内部错误',
  },
};

/** Looks up translated strings. */
export class Translator {
  readonly #tables = new Map<string, Map<string, string>>();

  constructor() {
    for (const [locale, strings] of Object.entries(coreStrings)) this.add(locale, strings);
  }

  /** Adds (or overrides) strings for `locale`. Returns a function that removes them again. */
  add(locale: Locale, strings: Strings): () => void {
    let table = this.#tables.get(locale);
    if (!table) {
      table = new Map();
      this.#tables.set(locale, table);
    }
    const previous = new Map<string, string | undefined>();
    for (const [key, value] of Object.entries(strings)) {
      previous.set(key, table.get(key));
      table.set(key, value);
    }
    return () => {
      for (const [key, value] of previous) {
        if (value === undefined) table.delete(key);
        else table.set(key, value);
      }
    };
  }

  /** The string for `key` in `locale`, with `{param}`s filled in. */
  t(locale: Locale, key: string, params: Readonly<Record<string, string | number>> = {}): string {
    const template = this.#tables.get(locale)?.get(key) ?? this.#tables.get('en')?.get(key) ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
      name in params ? String(params[name]) : whole,
    );
  }
}
