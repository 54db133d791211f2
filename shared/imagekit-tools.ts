/**
 * The seed's ImageKit tools: two-phase transfers through ImageKit for clients that can reach
 * neither the host nor the Worker's own links. Offered only when ImageKit is configured; then,
 * as in the seed, the local-path transfer tools are not offered (the link tools stay).
 */
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { schemaOnce } from './schema-once.ts';
import { permissionsArgument, overwriteArgument, type FileToolSettings } from './file-tools.ts';
import type { ImageKitDownloadOffer, ImageKitUploadOffer } from './imagekit/transfers.ts';
import { guestIdSchema } from './proxmox.ts';
import { quoteShellWord } from './shell-quote.ts';
import { hostArgument } from './tool-catalog.ts';
import type { ToolExecutor } from './tool-executor.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';
import { formatCount } from './format-count.ts';

export type ImageKitExecutor = ToolExecutor &
  Required<Pick<ToolExecutor, 'imagekitRequestUpload' | 'imagekitConfirmUpload' | 'imagekitRequestDownload' | 'imagekitConfirmDownload'>>;

const remotePath = z
  .string({ error: 'remote_path must be a string' })
  .min(1, 'remote_path must not be empty')
  .max(4096, 'remote_path must be at most 4096 characters')
  .refine((value) => !value.includes('\0'), 'remote_path must not contain NUL bytes')
  .describe("Path on the host (absolute, or relative to the SSH user's home); inside the container when ctid is given (absolute).");
const ctid = guestIdSchema.optional().describe('Proxmox container id: the path is inside that container on the host.');
const transferId = z
  .string({ error: 'transfer_id must be a string' })
  .regex(/^[0-9a-f]{32}$/, 'transfer_id is the 32 hex digits a request_* tool returned')
  .describe('The transfer_id the request tool returned.');

function uploadCurl(offer: ImageKitUploadOffer): string {
  const fields = Object.entries(offer.fields).map(([key, value]) => `-F ${quoteShellWord(`${key}=${String(value)}`)}`);
  return ['curl -sS --fail-with-body', '-F file=@LOCAL_FILE', ...fields, quoteShellWord(offer.uploadUrl)].join(' \\\n  ');
}

function uploadOfferResult(offer: ImageKitUploadOffer): CallToolResult {
  const where = offer.ctid !== undefined ? `${offer.path} in container ${offer.ctid} on ${offer.host}` : `${offer.path} on ${offer.host}`;
  const curl = uploadCurl(offer);
  const text = [
    `Step 1 of 2 for ${where}: upload the file to ImageKit (replace LOCAL_FILE with its path):`,
    '',
    curl,
    '',
    `These upload credentials work once and expire at ${offer.credentialsExpireAt}. At most ${formatCount(offer.maxBytes)} bytes.`,
    `Step 2: call imagekit_confirm_upload with transfer_id "${offer.transferId}" (before ${offer.transferExpiresAt}); the file then goes to the host and is deleted from ImageKit.`,
  ].join('\n');
  return {
    content: [{ type: 'text', text }],
    structuredContent: {
      transfer_id: offer.transferId,
      host: offer.host,
      ...(offer.ctid !== undefined ? { ctid: offer.ctid } : {}),
      path: offer.path,
      upload_url: offer.uploadUrl,
      fields: { ...offer.fields, expire: String(offer.fields.expire) },
      curl,
      credentials_expire_at: offer.credentialsExpireAt,
      transfer_expires_at: offer.transferExpiresAt,
      max_bytes: offer.maxBytes,
    },
  };
}

function downloadOfferResult(offer: ImageKitDownloadOffer): CallToolResult {
  const where = offer.ctid !== undefined ? `${offer.path} in container ${offer.ctid} on ${offer.host}` : `${offer.path} on ${offer.host}`;
  const curl = `curl -sS --fail-with-body -o LOCAL_FILE ${quoteShellWord(offer.url)}`;
  const text = [
    `Step 1 of 2: ${where} (${formatCount(offer.size)} bytes) is in ImageKit as a private file. Download it with this signed URL (it stops working at ${offer.expiresAt}):`,
    '',
    curl,
    '',
    `Step 2: call imagekit_confirm_download with transfer_id "${offer.transferId}" to delete it from ImageKit (it is deleted at expiry anyway).`,
  ].join('\n');
  return {
    content: [{ type: 'text', text }],
    structuredContent: {
      transfer_id: offer.transferId,
      host: offer.host,
      ...(offer.ctid !== undefined ? { ctid: offer.ctid } : {}),
      path: offer.path,
      size: offer.size,
      url: offer.url,
      curl,
      expires_at: offer.expiresAt,
    },
  };
}

export function registerImageKitTools(server: McpServer, executor: ImageKitExecutor, settings: FileToolSettings): void {
  const given = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value !== undefined ? ({ [key]: value } as Record<K, V>) : {});

  registerTool(
    server,
    'imagekit_request_upload',
    {
      title: 'Start an upload through ImageKit',
      description: `Step 1 of an upload to a host through ImageKit: returns a ready curl command with single-use upload credentials. Then call imagekit_confirm_upload. Fails now if the file exists and overwrite is false. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
      inputSchema: schemaOnce('imagekit_request_upload', () =>
        z.object({ remote_path: remotePath, permissions: permissionsArgument, overwrite: overwriteArgument, ctid, host: hostArgument }).strict(),
      ),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const offer = await executor.imagekitRequestUpload(
        {
          ...given('host', args.host),
          ...given('ctid', args.ctid),
          path: args.remote_path,
          ...given('permissions', args.permissions),
          overwrite: args.overwrite,
        },
        ctx.mcpReq.signal,
      );
      return offer.ok ? uploadOfferResult(offer.value) : errorResult(offer.error);
    },
  );

  registerTool(
    server,
    'imagekit_confirm_upload',
    {
      title: 'Finish an upload through ImageKit',
      description:
        'Step 2: moves the file uploaded for this transfer from ImageKit to the host (atomically, with the overwrite rule given in step 1), deletes it from ImageKit and closes the transfer.',
      inputSchema: schemaOnce('imagekit_confirm_upload', () =>
        z
          .object({
            transfer_id: transferId,
            file_id: z
              .string()
              .min(1)
              .max(64)
              .regex(/^[A-Za-z0-9_-]+$/, 'file_id is the fileId ImageKit returned')
              .optional()
              .describe('The fileId ImageKit returned, when more than one file was uploaded for this transfer.'),
          })
          .strict(),
      ),
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const done = await executor.imagekitConfirmUpload({ transferId: args.transfer_id, ...given('fileId', args.file_id) }, ctx.mcpReq.signal);
      if (!done.ok) return errorResult(done.error);
      const { written } = done.value;
      return {
        content: [
          {
            type: 'text',
            text: `Wrote ${written.path} on ${written.host}: ${formatCount(written.size)} bytes, mode ${written.mode}, SHA-256 ${written.sha256}${written.replaced ? ' (replaced the old file)' : ''}. ${done.value.deletedFromImageKit ? 'The copy in ImageKit was deleted.' : 'Deleting the copy in ImageKit failed; it is deleted when the transfer expires.'}`,
          },
        ],
        structuredContent: {
          transfer_id: done.value.transferId,
          host: written.host,
          path: written.path,
          size: written.size,
          sha256: written.sha256,
          mode: written.mode,
          replaced: written.replaced,
          deleted_from_imagekit: done.value.deletedFromImageKit,
        },
      };
    },
  );

  registerTool(
    server,
    'imagekit_request_download',
    {
      title: 'Start a download through ImageKit',
      description: `Step 1 of a download through ImageKit: stores the host file as a private ImageKit file and returns a signed URL that expires. Then call imagekit_confirm_download. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
      inputSchema: schemaOnce('imagekit_request_download', () => z.object({ remote_path: remotePath, ctid, host: hostArgument }).strict()),
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const offer = await executor.imagekitRequestDownload(
        { ...given('host', args.host), ...given('ctid', args.ctid), path: args.remote_path },
        ctx.mcpReq.signal,
      );
      return offer.ok ? downloadOfferResult(offer.value) : errorResult(offer.error);
    },
  );

  registerTool(
    server,
    'imagekit_confirm_download',
    {
      title: 'Finish a download through ImageKit',
      description: 'Step 2: deletes the downloaded file from ImageKit and closes the transfer.',
      inputSchema: schemaOnce('imagekit_confirm_download', () => z.object({ transfer_id: transferId }).strict()),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const done = await executor.imagekitConfirmDownload({ transferId: args.transfer_id }, ctx.mcpReq.signal);
      if (!done.ok) return errorResult(done.error);
      return {
        content: [{ type: 'text', text: `Transfer ${done.value.transferId} is closed; the file was deleted from ImageKit.` }],
        structuredContent: { transfer_id: done.value.transferId, deleted_from_imagekit: done.value.deletedFromImageKit },
      };
    },
  );
}
