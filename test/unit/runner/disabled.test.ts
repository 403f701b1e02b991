import { isDisabled } from '../../../runner/host';

/** `AzureWebJobs.<name>.Disabled`, as the Functions host reads it: the security suites turn timers off with it. */
describe('AzureWebJobs.<name>.Disabled', () => {
  it('disables only the named function, for true or 1 in any case, whatever the case of the name', () => {
    expect(isDisabled('hubspotSyncTimer', { 'AzureWebJobs.hubspotSyncTimer.Disabled': 'true' })).toBe(true);
    expect(isDisabled('hubspotSyncTimer', { 'azurewebjobs.HUBSPOTSYNCTIMER.disabled': 'TRUE' })).toBe(true);
    expect(isDisabled('hubspotSyncTimer', { 'AzureWebJobs.hubspotSyncTimer.Disabled': '1' })).toBe(true);
    expect(isDisabled('hubspotSyncTimer', { 'AzureWebJobs.hubspotSyncTimer.Disabled': 'false' })).toBe(false);
    expect(isDisabled('hubspotSyncTimer', { 'AzureWebJobs.graphSubscriptionTimer.Disabled': 'true' })).toBe(false);
    expect(isDisabled('hubspotSyncTimer', {})).toBe(false);
  });
});
