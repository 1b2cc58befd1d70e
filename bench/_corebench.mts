import { benchCore } from './core.ts';
for (let i = 0; i < 3; i++) console.log((await benchCore()).slice(0, 3).map((r) => `${r.name}: ${r.value}`).join(' | '));
