/** What the file tools report about a path on a host. */
export interface FileInfo {
  /** As given (or the entry name in a directory listing). */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Permission bits in octal, e.g. "0644". */
  mode: string;
  /** Modification time, ISO 8601. */
  mtime: string;
}

export interface FileWriteResult {
  path: string;
  size: number;
  sha256: string;
  mode: string;
  replaced: boolean;
}

export interface FileReadResult {
  info: FileInfo;
  /** The bytes read, base64 (the tool decides how to show them). */
  dataBase64: string;
  offset: number;
  eof: boolean;
}

export interface DirectoryListing {
  path: string;
  entries: FileInfo[];
  truncated: boolean;
}

export interface LocalTransferResult {
  from: string;
  to: string;
  size: number;
  sha256: string;
  mode?: string;
  replaced: boolean;
}
