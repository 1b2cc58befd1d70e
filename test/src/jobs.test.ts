import { MemoryJobs } from '../../src/jobs.ts';
import { jobsContract } from './jobs.contract.ts';

jobsContract('memory', async () => {
  const jobs = new MemoryJobs();
  return { jobs, another: async () => jobs, close: async () => {} };
});
