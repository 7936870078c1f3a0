import { ConfigError, loadConfig } from '@mailroom/shared';

const base = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  MONGODB_URI: 'mongodb://127.0.0.1:27017/acme',
  MANAGED_SMTP_URL: 'smtp://127.0.0.1:2525',
  MANAGED_FROM: 'Mailroom <no-reply@mailroom.test>',
};

describe('loadConfig', () => {
  it('when only the required variables are set, then defaults fill the rest and the logs DB is another database', () => {
    const c = loadConfig(base);
    expect(c.port).toBe(3000);
    expect(c.queuePrefix).toBe('{mailroom}');
    expect(c.mongo.db).toBe('acme');
    expect(c.logsMongo).toMatchObject({ uri: base.MONGODB_URI, db: 'acme_logs' });
    expect(c.send.attempts).toBe(5);
    expect(c.devDefaults.sort()).toEqual(['OPERATOR_TOKEN', 'SECRETS_KEY']);
    expect(c.publicUrl).toBe('http://localhost:3000');
  });

  it('when LOGS_MONGODB_URI names a database, then it is used', () => {
    const c = loadConfig({ ...base, LOGS_MONGODB_URI: 'mongodb://logs.internal:27017/maillogs' });
    expect(c.logsMongo).toMatchObject({ uri: 'mongodb://logs.internal:27017/maillogs', db: 'maillogs' });
  });

  it('when values are wrong, then one error names every bad variable', () => {
    expect(() => loadConfig({ ...base, PORT: 'abc', REDIS_URL: 'http://x', SEND_ATTEMPTS: '0' })).toThrow(ConfigError);
    try {
      loadConfig({ ...base, PORT: 'abc', REDIS_URL: 'http://x' });
    } catch (e) {
      expect((e as Error).message).toMatch(/PORT/);
      expect((e as Error).message).toMatch(/REDIS_URL/);
    }
  });

  it('when a required variable is missing, then it is named', () => {
    expect(() => loadConfig({ ...base, MANAGED_SMTP_URL: undefined })).toThrow(/MANAGED_SMTP_URL/);
  });

  it('when running in production without secrets, then it refuses to start', () => {
    expect(() => loadConfig({ ...base, NODE_ENV: 'production' })).toThrow(/OPERATOR_TOKEN: required in production/);
    const c = loadConfig({ ...base, NODE_ENV: 'production', OPERATOR_TOKEN: 'x'.repeat(32), SECRETS_KEY: 'y'.repeat(32) });
    expect(c.devDefaults).toEqual([]);
  });

  it('when the logs database would be the main database, then it refuses', () => {
    expect(() => loadConfig({ ...base, LOGS_MONGODB_DB: 'acme' })).toThrow(/must differ/);
  });
});
