import { describeDuration, MAIL_TEMPLATES, MailTemplates } from './mail-templates';

describe('MailTemplates', () => {
  const templates = new MailTemplates();

  it.each(MAIL_TEMPLATES)('renders %s with a subject, a text part and an HTML part', (name) => {
    const mail = templates.render(name, {
      link: 'https://app.example.com/x?token=abc',
      ttl: '30 minutes',
      newEmail: 'new@example.com',
    });
    expect(mail.subject.length).toBeGreaterThan(5);
    expect(mail.text).not.toMatch(/\{\{|Subject:/);
    expect(mail.html).toMatch(/^<!doctype html>/);
    expect(mail.html).not.toContain('{{');
  });

  it('escapes values in the HTML part only', () => {
    const mail = templates.render('email-change-notice', { newEmail: '"a<b>"@example.com' });
    expect(mail.text).toContain('"a<b>"@example.com');
    expect(mail.html).toContain('&quot;a&lt;b&gt;&quot;@example.com');
  });

  it('refuses to render with a missing value', () => {
    expect(() => templates.render('password-reset', { ttl: '1 hour' })).toThrow(/link/);
  });

  it('describes link lifetimes', () => {
    expect(describeDuration(1800)).toBe('30 minutes');
    expect(describeDuration(86400)).toBe('1 day');
    expect(describeDuration(7200)).toBe('2 hours');
    expect(describeDuration(90)).toBe('2 minutes');
  });
});
