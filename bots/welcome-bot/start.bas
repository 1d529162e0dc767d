' welcome-bot: the seed's personalised greeting, grown a little.
' It shares user memory with sales-bot and support-bot: whoever learns your name,
' every bot knows it.
name = GET USER MEMORY("name")
language = GET USER MEMORY("language")

IF name = "" THEN
    TALK "Welcome! What's your name?"
    HEAR name
    SET USER MEMORY "name", name
    SET USER FACT "fact_name", name
END IF

IF language = "" THEN
    TALK "Nice to meet you, " + name + "! Which language do you prefer? (English, Português, Español)"
    HEAR answer
    answer = LOWER(TRIM(answer))
    IF answer = "português" OR answer = "portugues" OR answer = "portuguese" OR answer = "pt" THEN
        language = "pt-BR"
    ELSEIF answer = "español" OR answer = "espanol" OR answer = "spanish" OR answer = "es" THEN
        language = "es"
    ELSE
        language = "en"
    END IF
    SET USER MEMORY "language", language
END IF

visits = GET USER MEMORY("welcome_visits")
visits = visits + 1
SET USER MEMORY "welcome_visits", visits
SET BOT MEMORY "last_visitor_language", language

IF language = "pt-BR" THEN
    TALK "Olá, " + name + "! Esta é a sua visita número " + visits + "."
ELSEIF language = "es" THEN
    TALK "¡Hola, " + name + "! Esta es tu visita número " + visits + "."
ELSE
    TALK "Hello, " + name + "! This is visit number " + visits + "."
END IF
