export default async function globalTeardown(): Promise<void> {
  // Each suite stops what it started; nothing shared to stop here yet.
}
