import { runMain } from '@mailroom/shared';
import { startSchedulerApp } from './scheduler-app';

runMain('scheduler', startSchedulerApp);
