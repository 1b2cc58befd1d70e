/** The `ask` plugin's strings. */
export const strings = {
  en: {
    'ask.usage': 'Usage: /ask <question>, or /ask@all <question> to ask every model',
    'ask.queued': '{name}: queued, {ahead} ahead',
    'ask.waiting': '{count} more question(s) of yours waiting for the answer being written...',
    'ask.waitingStarted': 'Your waiting questions are all being answered.',
    'ask.queueFull': 'You already have {max} questions waiting. Wait for the answers, or /cancel them.',
    'ask.tooLong': '(answer cut at {max} characters)',
    'ask.notSaved': '(This exchange could not be saved: the next question will not see it.)',
    'ask.reset': 'Forgot this conversation ({count} messages).',
    'ask.resetFailed': 'Could not forget this conversation: the memory is not available right now.',
  },
  'zh-CN': {
    'ask.usage': '用法：/ask <问题>，或 /ask@all <问题> 同时问所有模型',
    'ask.queued': '{name}：排队中，前面还有 {ahead} 个',
    'ask.waiting': '你还有 {count} 个问题在等待当前回答完成……',
    'ask.waitingStarted': '你等待中的问题都已开始回答。',
    'ask.queueFull': '你已有 {max} 个问题在等待。请等待回答，或使用 /cancel 取消。',
    'ask.tooLong': '（回答在 {max} 个字符处截断）',
    'ask.notSaved': '（本轮对话未能保存：下一个问题将看不到它。）',
    'ask.reset': '已清除此对话（{count} 条消息）。',
    'ask.resetFailed': '无法清除此对话：记忆暂时不可用。',
  },
} as const;
