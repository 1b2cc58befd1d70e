/** The `ask` plugin's strings. */
export const strings = {
  en: {
    'ask.usage': 'Usage: /ask <question>, or /ask@all <question> to ask every model',
    'ask.queued': '{name}: queued, {ahead} ahead',
    'ask.waitingForYou': 'Waiting for your previous question to be answered...',
    'ask.reset': 'Forgot this conversation ({count} messages).',
  },
  'zh-CN': {
    'ask.usage': '用法：/ask <问题>，或 /ask@all <问题> 同时问所有模型',
    'ask.queued': '{name}：排队中，前面还有 {ahead} 个',
    'ask.waitingForYou': '正在等待你上一个问题回答完毕……',
    'ask.reset': '已清除此对话（{count} 条消息）。',
  },
} as const;
