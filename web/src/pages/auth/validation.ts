// Mirrors the server's password policy so users learn about it before submitting; the server
// remains the authority and its validation message is shown if the two ever disagree.
export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_HINT = `At least ${PASSWORD_MIN_LENGTH} characters, with at least one letter and one digit.`;

export const emailRules = {
  required: 'Enter your email address.',
  pattern: { value: /^[^\s@]+@[^\s@]+\.[^\s@]+$/, message: 'Enter a valid email address.' },
};

export const newPasswordRules = {
  required: 'Choose a password.',
  minLength: { value: PASSWORD_MIN_LENGTH, message: `Use at least ${PASSWORD_MIN_LENGTH} characters.` },
  maxLength: { value: 128, message: 'Use at most 128 characters.' },
  validate: (value: string) => (/\p{L}/u.test(value) && /\d/.test(value)) || 'Include at least one letter and one digit.',
};
