/** The `remind` plugin's strings. */
export const strings = {
  en: {
    'remind.usage':
      'Usage: /remind <when> <text>. <when> is a delay (45s, 10m, 2h30m, 1d), a time (09:00, tomorrow 09:00) or a date and time (2026-12-24 18:00), in {timezone}.',
    'remind.set': '⏰ I will remind you at {time} ({timezone}), in {delay}. Id: {id}',
    'remind.fire': '⏰ Reminder for {name}: {text}',
    'remind.fireLate': '⏰ Reminder for {name} (late: it was due at {time}): {text}',
    'remind.past': 'That time has passed already ({time}, {timezone}).',
    'remind.tooFar': 'That is too far ahead: at most {days} days.',
    'remind.tooLong': 'That reminder is too long: at most {max} characters.',
    'remind.limit': 'You already have {max} pending reminders. /forget one first.',
    'remind.none': 'You have no pending reminders here.',
    'remind.list': 'Your reminders here ({timezone}):',
    'remind.item': '{id} · {time} · {text}',
    'remind.forgotten': 'Forgot reminder {id}.',
    'remind.unknown': 'You have no reminder {id} here. /reminders lists yours.',
    'remind.forgetUsage': 'Usage: /forget <id> (/reminders lists the ids)',
  },
  'zh-CN': {
    'remind.usage':
      '用法：/remind <时间> <内容>。<时间> 可以是一段时长（45s、10m、2h30m、1d）、一个时刻（09:00、明天 09:00）或日期和时刻（2026-12-24 18:00），时区为 {timezone}。',
    'remind.set': '⏰ 我会在 {time}（{timezone}）提醒你，还有 {delay}。编号：{id}',
    'remind.fire': '⏰ 提醒 {name}：{text}',
    'remind.fireLate': '⏰ 提醒 {name}（迟到了：原定 {time}）：{text}',
    'remind.past': '这个时间已经过去了（{time}，{timezone}）。',
    'remind.tooFar': '时间太远了：最多 {days} 天。',
    'remind.tooLong': '提醒内容太长：最多 {max} 个字符。',
    'remind.limit': '你已有 {max} 个待发提醒。请先用 /forget 删除一个。',
    'remind.none': '你在这里没有待发的提醒。',
    'remind.list': '你在这里的提醒（{timezone}）：',
    'remind.item': '{id} · {time} · {text}',
    'remind.forgotten': '已删除提醒 {id}。',
    'remind.unknown': '你在这里没有编号为 {id} 的提醒。用 /reminders 查看。',
    'remind.forgetUsage': '用法：/forget <编号>（/reminders 列出编号）',
  },
};
