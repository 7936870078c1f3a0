import { runMain } from '@mailroom/shared';
import { startApiServer } from './api-server';

runMain('api', startApiServer);
