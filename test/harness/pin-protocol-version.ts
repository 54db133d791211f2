/**
 * Makes a client that offers the newest protocol revision offer an older one instead: the
 * `protocolVersion` of an `initialize` request is replaced, nothing else. The conformance suite's
 * client always offers its SDK's newest revision; rewriting its offer on the way in lets the same
 * scenarios run against a session the server negotiated at the older revision (the SDK client
 * accepts any revision it supports in the answer and then sends it in MCP-Protocol-Version).
 */
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export function pinInitializeVersion(message: JSONRPCMessage, version: string | undefined): JSONRPCMessage {
  if (version === undefined || !isInitializeRequest(message)) return message;
  return { ...message, params: { ...message.params, protocolVersion: version } };
}
