import { DisplayNameField, EmailField, NewPasswordField } from '../../users/fields';

export class RegisterDto {
  @EmailField()
  email!: string;

  @NewPasswordField()
  password!: string;

  @DisplayNameField()
  displayName?: string;
}
