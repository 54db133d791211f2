/**
 * The job tools (shared/job-tools.ts) through a real MCP client and server, over an executor whose
 * answers the test writes: what a listing of thousands of jobs returns.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport, McpServer } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it } from 'vitest';
import { failure, success, type Outcome } from '../../../shared/errors.ts';
import { registerJobTools } from '../../../shared/job-tools.ts';
import { newJobId, type JobExecutor, type JobView } from '../../../shared/jobs.ts';
import { MAX_COMMAND_LENGTH, MAX_LISTED_JOBS } from '../../../shared/limits.ts';

const open: Client[] = [];

afterEach(async () => {
  for (const client of open.splice(0)) await client.close();
});

function view(index: number): JobView {
  return {
    jobId: newJobId(),
    name: null,
    host: 'web1',
    guest: null,
    command: `echo ${index} ${'x'.repeat(MAX_COMMAND_LENGTH - 20)}`,
    state: 'exited',
    exitCode: 0,
    signal: null,
    createdAt: new Date(1_000_000_000_000 - index * 1000).toISOString(),
    startedAt: null,
    endedAt: null,
    timeoutMs: 60_000,
    stdoutBytes: 2048,
    stderrBytes: 2048,
    stdoutDropped: 0,
    stderrDropped: 0,
    stdoutTail: 'o'.repeat(2048),
    stderrTail: 'e'.repeat(2048),
    stopConfirmed: null,
    processesLeft: [],
    cleanupAt: null,
  };
}

/** An executor whose listing is whatever the test gives (as a book, or every user's books, may hold). */
function listing(views: JobView[]): JobExecutor {
  const none = async (): Promise<Outcome<never>> => failure('job_not_found', 'none');
  return { startJob: none, jobStatus: none, jobOutput: none, cancelJob: none, listJobs: async () => success(views) };
}

async function client(executor: JobExecutor): Promise<Client> {
  const server = new McpServer({ name: 'job-tools-test', version: '1' });
  registerJobTools(server, executor);
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const connected = new Client({ name: 'job-tools-test', version: '1' });
  await connected.connect(clientSide);
  open.push(connected);
  return connected;
}

describe('ssh_list_jobs', () => {
  it(`shows at most the newest ${MAX_LISTED_JOBS} jobs of thousands, and says that more match`, async () => {
    const views = Array.from({ length: 2_000 }, (_, index) => view(index));
    const mcp = await client(listing(views));
    const result = await mcp.callTool({ name: 'ssh_list_jobs', arguments: {} });
    const structured = result.structuredContent as { jobs: Array<{ job_id: string }>; more: boolean };
    expect(structured.jobs.map((job) => job.job_id)).toEqual(views.slice(0, MAX_LISTED_JOBS).map((job) => job.jobId));
    expect(structured.more).toBe(true);
    const text = (result.content as Array<{ type: string; text: string }>)[0]?.text ?? '';
    expect(text).toContain(`The newest ${MAX_LISTED_JOBS} are shown`);
    // Bounded whatever the book holds: each entry is at most a command and two tails.
    expect(JSON.stringify(result).length).toBeLessThan(MAX_LISTED_JOBS * (MAX_COMMAND_LENGTH + 8 * 1024));
  });

  it('says nothing of more jobs when all are listed', async () => {
    const views = Array.from({ length: MAX_LISTED_JOBS }, (_, index) => view(index));
    const result = await (await client(listing(views))).callTool({ name: 'ssh_list_jobs', arguments: {} });
    expect(result.structuredContent).toMatchObject({ more: false });
    expect((result.structuredContent as { jobs: unknown[] }).jobs).toHaveLength(MAX_LISTED_JOBS);
  });
});
