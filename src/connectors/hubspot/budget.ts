// The cross-instance budget is generic and lives in `base/`; HubSpot keeps its import path.
export * from '../base/distributedBudget';
