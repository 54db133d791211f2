/** The release, reported in the relay's hello and the MCP server info. A test keeps it equal to package.json. */
export const VERSION = '0.1.0';
