import { EmailField, NewPasswordField, PasswordField, StringField } from '../../users/fields';

const CODE_FIELD = {
  optional: true,
  api: { description: 'A second-factor code, when the account has a second factor' },
};

export class ForgotPasswordDto {
  @EmailField()
  email!: string;
}

/** `code` is the second factor's, for accounts that have one. */
export class ResetPasswordDto {
  @StringField(256, { api: { description: 'The token from the mailed /reset-password link' } })
  token!: string;

  @NewPasswordField()
  newPassword!: string;

  @StringField(64, CODE_FIELD)
  code?: string;
}

export class VerifyEmailDto {
  @StringField(256, { api: { description: 'The token from a mailed /verify-email or /confirm-email link' } })
  token!: string;
}

export class ChangeEmailDto {
  @EmailField({ example: 'alice@new.example.com' })
  newEmail!: string;

  @PasswordField({ description: 'The current password' })
  password!: string;

  @StringField(64, CODE_FIELD)
  code?: string;
}
