/**
 * The reasons a person can give for a report, as the words sent in
 * `report.reason` (the operator's console shows and filters by them).
 */
export const REPORT_REASONS = ['nudity', 'harassment', 'hate', 'spam', 'underage', 'other'] as const;

export type ReportReason = (typeof REPORT_REASONS)[number];
