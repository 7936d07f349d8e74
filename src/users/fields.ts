import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptions } from '@nestjs/swagger';
import { IsOptional, ValidateBy, ValidationArguments } from 'class-validator';
import {
  DISPLAY_NAME_MAX_LENGTH,
  displayNameProblem,
  EMAIL_MAX_LENGTH,
  emailLookupProblem,
  emailProblem,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  passwordProblem,
  presentedPasswordProblem,
} from './credentials';

/**
 * Field decorators for request DTOs: each applies a field's validation and its OpenAPI description from one
 * declaration, so the documented limits are the enforced ones. Every field yields at most one message,
 * and every field is checked, so one response names all the problems of a request.
 */

type Problem = (value: string, field: string) => string | undefined;

interface FieldOptions {
  optional?: boolean;
  api?: ApiPropertyOptions;
}

/** A string field checked by `problem`; anything but a string (null, a number, an array) is refused. */
function stringField(name: string, problem: Problem, options: FieldOptions): PropertyDecorator {
  const why = (args: ValidationArguments): string | undefined =>
    typeof args.value === 'string' ? problem(args.value, args.property) : `${args.property} must be a string`;
  return applyDecorators(
    ApiProperty({ type: String, required: !options.optional, ...options.api } as ApiPropertyOptions),
    ...(options.optional ? [IsOptional()] : []),
    ValidateBy({
      name,
      validator: {
        validate: (_value, args) => args !== undefined && why(args) === undefined,
        defaultMessage: (args) => (args ? (why(args) ?? '') : ''),
      },
    }),
  );
}

const maxLength =
  (limit: number): Problem =>
  (value, field) =>
    [...value].length > limit ? `${field} must be at most ${limit} characters` : undefined;

/** An email for a new account (registration): the whole policy. */
export function EmailField(api: ApiPropertyOptions = {}): PropertyDecorator {
  return stringField('email', emailProblem, {
    api: { format: 'email', maxLength: EMAIL_MAX_LENGTH, example: 'alice@example.com', ...api },
  });
}

/** An email that names an account to look up (login): refused only when it could name none. */
export function EmailLookupField(options: FieldOptions = {}): PropertyDecorator {
  return stringField('emailLookup', emailLookupProblem, {
    ...options,
    api: { maxLength: EMAIL_MAX_LENGTH, example: 'alice@example.com', ...options.api },
  });
}

/** A new password: the whole policy (length after NFKC, no NUL, not a common password). */
export function NewPasswordField(api: ApiPropertyOptions = {}): PropertyDecorator {
  return stringField('newPassword', passwordProblem, {
    api: {
      minLength: PASSWORD_MIN_LENGTH,
      maxLength: PASSWORD_MAX_LENGTH,
      description: `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters after Unicode NFKC; not a common password`,
      example: 'correct horse battery staple',
      ...api,
    },
  });
}

/** A password presented to be checked against the account's (login, current password). */
export function PasswordField(api: ApiPropertyOptions = {}): PropertyDecorator {
  return stringField('password', presentedPasswordProblem, {
    api: { maxLength: PASSWORD_MAX_LENGTH, example: 'correct horse battery staple', ...api },
  });
}

export function DisplayNameField(): PropertyDecorator {
  return stringField('displayName', displayNameProblem, {
    optional: true,
    api: {
      maxLength: DISPLAY_NAME_MAX_LENGTH,
      description: 'No control or bidirectional override characters',
      example: 'Alice',
    },
  });
}

/** Any other string field, with its length limit. */
export function StringField(limit: number, options: FieldOptions = {}): PropertyDecorator {
  return stringField('string', maxLength(limit), {
    ...options,
    api: { maxLength: limit, ...options.api },
  });
}
