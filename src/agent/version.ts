// The agent's version, reported in `register`. Kept equal to package.json's (a test checks it).
export const AGENT_VERSION = '0.1.0';
