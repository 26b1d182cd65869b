# bash completion for `jool` (userspace NAT64, Jool 4.1.9 command line).
# Install: copy to /usr/share/bash-completion/completions/jool (or source it).
# Modes, operations, option flags and global keys come from the client itself
# (`jool autocomplete N WORD...`), so the completion never drifts from the parser.

_jool_complete()
{
	local cur prev i depth candidates
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev=""
	[ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
	COMPREPLY=()

	# ARGP1: words before the MODE.
	i=1
	while [ "$i" -lt "$COMP_CWORD" ]; do
		case "${COMP_WORDS[i]}" in
		-i|-f|--instance|--file) i=$((i + 2)) ;;
		--) i=$((i + 1)); break ;;
		-*) i=$((i + 1)) ;;
		*) break ;;
		esac
	done
	if [ "$i" -gt "$COMP_CWORD" ]; then
		# completing the argument of -i/-f
		case "$prev" in
		-f|--file) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
		esac
		return 0
	fi
	if [ "$i" -eq "$COMP_CWORD" ]; then
		case "$prev" in
		-f|--file) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
		-i|--instance) return 0 ;;
		esac
		if [[ "$cur" == -* ]]; then
			COMPREPLY=( $(compgen -W "--instance --file --help --version --usage" -- "$cur") )
			return 0
		fi
	fi

	depth=$((COMP_CWORD - i + 1))
	candidates=$("${COMP_WORDS[0]}" autocomplete "$depth" "${COMP_WORDS[@]:i:depth}" 2>/dev/null)
	COMPREPLY=( $(compgen -W "$candidates" -- "$cur") )

	# Operations that take a file or that take free-form values.
	case "${COMP_WORDS[i]}" in
	f|fi|fil|file)
		if [ "$depth" -ge 3 ] && [[ "$cur" != -* ]]; then
			COMPREPLY+=( $(compgen -f -- "$cur") )
		fi
		;;
	esac
	return 0
}
complete -F _jool_complete jool
