// Moved to src/shared/statistics.ts (the panel summarises checks too); re-exported for the engine's importers.
export { pearson, ranks, spearman } from '../../shared/statistics';
