import { runMain } from '@mailroom/shared';
import { startWorkerApp } from './worker-app';

runMain('worker', startWorkerApp);
