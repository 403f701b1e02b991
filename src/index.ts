import { app } from '@azure/functions';
import { onAppStart } from './platform/startup';

// Responses are buffered JSON and small HTML pages; streaming would need the host's HTTP proxy and buys
// nothing here.
app.setup({ enableHttpStream: false });

app.hook.appStart(async () => {
  await onAppStart();
});
