/** The requester's own approvals page (worker/approvals/own-approvals-page.ts), named where held calls point to it. */
export const OWN_APPROVALS_PATH = '/approvals/mine';
